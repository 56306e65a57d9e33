// The page's old address: a permanent redirect to /.
import type { APIRoute } from "astro";

export const GET: APIRoute = ({ redirect }) => redirect("/", 301);
