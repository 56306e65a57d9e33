// The taskboard as an Astro SSR app behind the canvas runtime: @astrojs/node in standalone mode
// serves pages, API routes and public/ from one process listening on $HOST:$PORT.
import node from "@astrojs/node";
import { defineConfig } from "astro/config";

export default defineConfig({
  output: "server",
  adapter: node({ mode: "standalone" }),
  // The runtime proxies to 127.0.0.1; "localhost" may resolve to ::1 first. $HOST overrides it.
  server: { host: "127.0.0.1" },
  security: {
    // On by default in Astro 5: a form POST whose Origin differs from the request's own URL is
    // answered 403. Behind a Function URL the app sees plain HTTP from the runtime, so the URL it
    // builds is only right if it may trust the front end's headers (below).
    checkOrigin: true,
    // Astro builds the request URL from Host and X-Forwarded-Proto/-Host only when they match one
    // of these patterns; otherwise it uses http://localhost, every browser's Origin differs, and
    // every form POST is 403. The Function URL sends its own domain as Host and
    // X-Forwarded-Proto: https; serve mode sends 127.0.0.1:<port> and http. The list is read at
    // build time: set FUNCTION_URL_HOST (e.g. abc123.lambda-url.eu-west-1.on.aws, or your custom
    // domain) to allow exactly that host instead of every *.on.aws name.
    allowedDomains: [
      { protocol: "https", hostname: process.env.FUNCTION_URL_HOST || "**.on.aws" },
      { protocol: "http", hostname: "127.0.0.1" },
      { protocol: "http", hostname: "localhost" },
    ],
  },
});
