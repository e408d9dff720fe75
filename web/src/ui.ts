// Pieces shared by the views: status badges, job controls, export buttons, notices.

import { ApiError, exportJob, type Job, LIVE, postJson } from "./api";
import { h, replace } from "./dom";

export function statusBadge(job: Pick<Job, "status" | "reason" | "pending_control">): HTMLElement {
  const pending = job.pending_control ? ` (${job.pending_control} asked)` : "";
  return h(
    "span",
    { class: `badge status-${job.status}`, title: job.reason ?? "", "data-status": job.status },
    job.status + pending,
  );
}

/** A message at the bottom of the page for a few seconds. */
export function notify(text: string, kind: "info" | "error" = "info"): void {
  let area = document.getElementById("notices");
  if (!area) {
    area = h("div", { id: "notices", role: "status", "aria-live": "polite" });
    document.body.append(area);
  }
  const note = h("div", { class: `notice ${kind}` }, text);
  area.append(note);
  setTimeout(() => note.remove(), kind === "error" ? 8000 : 4000);
}

export function errorText(err: unknown): string {
  return err instanceof ApiError || err instanceof Error ? err.message : String(err);
}

const ACTIONS = [
  // which states each request fits (the server answers 409 to the rest)
  { action: "pause", label: "Pause", when: ["queued", "running"] },
  { action: "resume", label: "Resume", when: ["paused", "interrupted", "failed", "cancelled"] },
  { action: "cancel", label: "Cancel", when: ["queued", "running", "paused", "interrupted"] },
] as const;

/** The pause, resume and cancel buttons that fit the job's current state; ``changed`` gets the
 * job as the server left it. */
export function jobControls(job: Job, changed: (job: Job) => void): HTMLElement {
  const box = h("span", { class: "controls" });
  for (const { action, label, when } of ACTIONS) {
    if (!(when as readonly string[]).includes(job.status) || job.pending_control) continue;
    const button = h("button", {
      type: "button",
      class: action === "cancel" ? "danger small" : "small",
      "data-action": action,
    }, label);
    button.addEventListener("click", async (event) => {
      event.stopPropagation();
      if (action === "cancel" && !confirm(`Cancel job ${job.name}? What it recorded is kept.`)) return;
      button.disabled = true;
      try {
        const updated = await postJson<Job>(`/jobs/${job.id}/${action}`);
        notify(`${label}: ${updated.name} is ${updated.status}` +
          (updated.pending_control ? ` (${updated.pending_control} asked)` : ""));
        changed(updated);
      } catch (err) {
        notify(errorText(err), "error");
        button.disabled = false;
      }
    });
    box.append(button);
  }
  return box;
}

export const EXPORT_FORMATS = ["json", "yaml", "md", "txt"] as const;

/** One button per export format: each downloads the file and shows it in ``preview``. */
export function exportButtons(job: Job, top: number, preview: HTMLElement): HTMLElement {
  const box = h("span", { class: "exports" }, h("span", { class: "muted" }, "Export "));
  for (const format of EXPORT_FORMATS) {
    const button = h("button", { type: "button", class: "small", "data-export": format }, format);
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const file = await exportJob(job.id, format, top);
        download(file.text, file.filename, file.type);
        replace(
          preview,
          h("div", { class: "preview-head" },
            h("strong", null, file.filename),
            h("button", { type: "button", class: "small link", onclick: () => replace(preview) }, "close")),
          h("pre", { class: "export-text", "data-format": format }, file.text),
        );
      } catch (err) {
        notify(errorText(err), "error");
      } finally {
        button.disabled = false;
      }
    });
    box.append(button);
  }
  return box;
}

export function download(text: string, filename: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = h("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function isLive(job: Job): boolean {
  return LIVE.has(job.status);
}

/** A bar of ``used`` against ``limit`` (no bar when there is no limit). */
export function meter(label: string, used: number | null, limit: number | null,
                      show: (v: number | null) => string, note?: string): HTMLElement {
  const share = used !== null && limit ? Math.min(1, used / limit) : null;
  return h(
    "div",
    { class: "meter", "data-meter": label.toLowerCase() },
    h("div", { class: "meter-label" },
      h("span", null, label),
      h("span", { class: "meter-value" },
        show(used), limit ? ` / ${show(limit)}` : "", share !== null ? ` (${Math.round(share * 100)}%)` : "")),
    h("div", { class: "meter-track" },
      h("div", { class: "meter-fill", style: `width: ${share === null ? 0 : share * 100}%` })),
    note ? h("div", { class: "meter-note muted" }, note) : null,
  );
}
