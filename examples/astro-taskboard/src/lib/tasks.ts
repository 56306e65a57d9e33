// The task table: one long-lived better-sqlite3 connection to $DB_PATH in WAL mode, opened when
// the first route needing it is loaded. Same schema and rules as examples/taskboard/app.py, so a
// database made by either app serves the other.
import Database from "better-sqlite3";

export const MAX_TITLE = 500;

export interface Task {
  id: number;
  title: string;
  done: boolean;
}

interface Row {
  id: number;
  title: string;
  done: number;
}

export class BadRequest extends Error {}

const db = new Database(process.env.DB_PATH ?? "taskboard.db");
db.pragma("busy_timeout = 10000");
// No-ops on a database that is already WAL with the table present, so a restored database is
// not modified merely by reading it.
db.pragma("journal_mode = WAL");
db.exec(`CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0
)`);

const selectAll = db.prepare<[], Row>("SELECT id, title, done FROM tasks ORDER BY id");
const selectOne = db.prepare<[number], Row>("SELECT id, title, done FROM tasks WHERE id = ?");
const insert = db.prepare<[string]>("INSERT INTO tasks (title) VALUES (?)");
const setTitle = db.prepare<[string, number]>("UPDATE tasks SET title = ? WHERE id = ?");
const setDone = db.prepare<[number, number]>("UPDATE tasks SET done = ? WHERE id = ?");
const remove = db.prepare<[number]>("DELETE FROM tasks WHERE id = ?");

const task = (row: Row): Task => ({ id: row.id, title: row.title, done: Boolean(row.done) });

export function allTasks(): Task[] {
  return selectAll.all().map(task);
}

export function getTask(id: number): Task | null {
  const row = selectOne.get(id);
  return row ? task(row) : null;
}

export function addTask(title: string): Task {
  return { id: Number(insert.run(title).lastInsertRowid), title, done: false };
}

export function updateTask(id: number, changes: { title?: string; done?: boolean }): Task | null {
  if (changes.title !== undefined) setTitle.run(changes.title, id);
  if (changes.done !== undefined) setDone.run(changes.done ? 1 : 0, id);
  return getTask(id);
}

export function deleteTask(id: number): boolean {
  return remove.run(id).changes > 0;
}

export function validTitle(value: unknown): string {
  if (typeof value !== "string" || !value.trim()) throw new BadRequest("title must be a non-empty string");
  if (value.length > MAX_TITLE) throw new BadRequest(`title must be at most ${MAX_TITLE} characters`);
  return value.trim();
}
