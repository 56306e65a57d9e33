// Anything no other route or public/ file claims: the JSON 404 the Python taskboard answers.
import type { APIRoute } from "astro";
import { notFound } from "../lib/http";

export const ALL: APIRoute = () => notFound();
