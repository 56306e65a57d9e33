"""Text for the `reconcile db` commands: the database's facts, its versions, what a restore undoes."""
from __future__ import annotations

from datetime import datetime, timezone

from reconciler.db_history import Info, Version, written
from reconciler.timespec import iso


def size(value: int | None) -> str:
    if value is None:
        return "—"
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value} B"


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def duration(seconds: float) -> str:
    for unit, scale in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= scale:
            return f"{seconds / scale:g}{unit}" if seconds % scale == 0 else f"{seconds / scale:.1f}{unit}"
    return f"{seconds:g}s"


def render_info(facts: Info) -> str:
    lines = [f"Database {facts.location}"]
    current = facts.current
    if facts.deleted is not None:
        undo = (f": `reconcile db restore --version {facts.before_deletion}` brings back the state before it"
                if facts.before_deletion else "")
        lines.append(f"  DELETED at {iso(facts.deleted.modified)} (a delete marker is the current version){undo}")
    elif current is None:
        lines.append("  no database yet: the runtime creates it on the first write")
    else:
        manifest = current.manifest
        lines.append(f"  size:            {size(current.size)}")
        lines.append(f"  current version: {current.version_id}" + (f" (txid {manifest.txid})" if manifest else ""))
        by = f" by {current.writer}" if current.writer else ""
        lines.append(f"  last write:      {iso(written(current))}{by}")
        if manifest is not None:
            lines.append(f"  since the last compaction: {plural(len(manifest.log), 'write')} "
                         f"({size(manifest.log_bytes)} of page deltas on a {size(manifest.base.size)} base)")
        elif current.legacy:
            lines.append("  layout:          one SQLite object (adopted into page deltas on the runtime's first write)")
        else:
            lines.append(f"  unreadable:      {current.problem}")
    lines.append(f"  bucket versioning: {'on' if facts.versioning else 'OFF — S3 keeps no history of the database'}")
    back = facts.reaches_back_to
    history = f"{facts.versions} version(s)"
    if back is not None:
        history += f", rebuildable back to {iso(back)}"
    lines.append(f"  history:         {history} (kept {duration(facts.history_seconds)}: DB_HISTORY_SECONDS)")
    return "\n".join(lines)


def render_versions(versions: list[Version], *, location: str, total: int, history_seconds: float) -> str:
    if not versions:
        return f"No versions of {location} in that range ({total} in all)."
    now = datetime.now(timezone.utc)
    rows = [("TIME", "VERSION", "TXID", "SIZE", "WRITER")]
    for version in versions:
        if version.deleted:
            rows.append((iso(version.modified, precise=True), version.version_id, "", "", "(deleted: a delete marker)"))
            continue
        note = version.writer
        if version.problem:
            note = f"(unreadable: {version.problem})"
        elif version.manifest is not None and (now - written(version)).total_seconds() > history_seconds \
                and not version.latest:
            note += "  [older than the history window: may not rebuild]"
        txid = "" if version.txid is None else str(version.txid)
        note += "  (current)" if version.latest else ""
        rows.append((iso(written(version), precise=True), version.version_id, txid, size(version.size), note))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    text = [f"Versions of {location}, newest first ({len(versions)} of {total}):"]
    text += ["  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4]
             for row in rows]
    return "\n".join(line.rstrip() for line in text)
