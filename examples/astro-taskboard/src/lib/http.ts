// Answers shared by the API routes, shaped like examples/taskboard/app.py's.
import { BadRequest } from "./tasks";

export function json(status: number, value: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(value), { status, headers: { "Content-Type": "application/json", ...headers } });
}

export const error = (status: number, message: string): Response => json(status, { error: message });

export const notFound = (): Response => error(404, "not found");

export async function jsonBody(request: Request): Promise<Record<string, unknown>> {
  const text = await request.text();
  let body: unknown;
  try {
    body = JSON.parse(text || "{}");
  } catch {
    throw new BadRequest("the body must be JSON");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new BadRequest("the body must be a JSON object");
  }
  return body as Record<string, unknown>;
}

export const taskId = (param: string | undefined): number | null => (param && /^\d+$/.test(param) ? Number(param) : null);
