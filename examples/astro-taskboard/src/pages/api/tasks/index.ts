// GET /api/tasks: every task. POST: JSON {"title"} -> 201 and the task; an HTML form post ->
// 303 to / with a one-time "flash" cookie and the new task's id in "last_task".
import type { APIRoute } from "astro";
import { error, json, jsonBody } from "../../../lib/http";
import { BadRequest, addTask, allTasks, validTitle } from "../../../lib/tasks";

export const GET: APIRoute = () => json(200, allTasks());

export const POST: APIRoute = async ({ request, cookies, redirect }) => {
  try {
    if ((request.headers.get("content-type") ?? "").startsWith("application/x-www-form-urlencoded")) {
      const form = new URLSearchParams(await request.text());
      const task = addTask(validTitle(form.get("title") ?? ""));
      cookies.set("flash", "added", { path: "/", httpOnly: true, sameSite: "lax" });
      cookies.set("last_task", String(task.id), { path: "/", sameSite: "lax" });
      return redirect("/", 303);
    }
    const task = addTask(validTitle((await jsonBody(request)).title));
    return json(201, task, { Location: `/api/tasks/${task.id}` });
  } catch (caught) {
    if (caught instanceof BadRequest) return error(400, caught.message);
    throw caught;
  }
};
