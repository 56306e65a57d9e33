// GET, PATCH {"title"?, "done"?} and DELETE one task; 404 when there is no such task.
import type { APIRoute } from "astro";
import { error, json, jsonBody, notFound, taskId } from "../../../lib/http";
import { BadRequest, deleteTask, getTask, updateTask, validTitle } from "../../../lib/tasks";

export const GET: APIRoute = ({ params }) => {
  const id = taskId(params.id);
  if (id === null) return notFound();
  const task = getTask(id);
  return task ? json(200, task) : error(404, "no such task");
};

export const PATCH: APIRoute = async ({ params, request }) => {
  const id = taskId(params.id);
  if (id === null) return notFound();
  const changes: { title?: string; done?: boolean } = {};
  try {
    const body = await jsonBody(request);
    if ("title" in body) changes.title = validTitle(body.title);
    if ("done" in body) {
      if (typeof body.done !== "boolean") throw new BadRequest("done must be true or false");
      changes.done = body.done;
    }
  } catch (caught) {
    if (caught instanceof BadRequest) return error(400, caught.message);
    throw caught;
  }
  const task = updateTask(id, changes);
  return task ? json(200, task) : error(404, "no such task");
};

export const DELETE: APIRoute = ({ params }) => {
  const id = taskId(params.id);
  if (id === null) return notFound();
  return deleteTask(id) ? new Response(null, { status: 204 }) : error(404, "no such task");
};
