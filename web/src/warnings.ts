// What a job warns about while it runs (its SearchWarning events, e.g. "no_spread": every
// candidate scored the same). They come live on the event stream and again, from the stored
// events, whenever the page is opened: each is kept once, by its code.

export interface SearchWarning {
  code: string;
  message: string;
}

/** The warning an event's data carries, or null when it carries neither code nor message. */
export function searchWarning(data: Record<string, unknown>): SearchWarning | null {
  const code = typeof data.code === "string" ? data.code.trim() : "";
  const message = typeof data.message === "string" ? data.message.trim() : "";
  if (!code && !message) return null;
  return { code: code || "warning", message: message || code };
}

export class Warnings {
  private readonly byCode = new Map<string, SearchWarning>();

  /** Keeps ``warning`` unless one with its code is kept already; says whether it was new
   * (a stream that reconnects, or a job that resumes, may say it again). */
  add(warning: SearchWarning): boolean {
    if (this.byCode.has(warning.code)) return false;
    this.byCode.set(warning.code, warning);
    return true;
  }

  /** In the order they first came. */
  get items(): SearchWarning[] {
    return [...this.byCode.values()];
  }
}
