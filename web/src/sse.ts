// Server-sent events over fetch. EventSource cannot send an Authorization header, so the stream
// is read with a ReadableStream reader and parsed here; after a drop it reconnects with
// Last-Event-ID, and the server sends only what came after.

import { ApiError, request } from "./api";
import { sleep } from "./dom";

export interface SseMessage {
  id: string;
  event: string;
  data: string;
}

/** Turns chunks of an event stream into messages (the WHATWG event-stream format). */
export class SseParser {
  lastEventId = "";
  retryMs: number | null = null;
  private pending = "";
  private data: string[] = [];
  private event = "";

  push(chunk: string): SseMessage[] {
    const buf = this.pending + chunk;
    const out: SseMessage[] = [];
    let pos = 0;
    let cr = buf.indexOf("\r");
    for (;;) {
      if (cr >= 0 && cr < pos) cr = buf.indexOf("\r", pos);
      const lf = buf.indexOf("\n", pos);
      let end: number;
      let next: number;
      if (cr >= 0 && (lf < 0 || cr < lf)) {
        if (cr === buf.length - 1) break; // a CR at the very end may be half of a CRLF
        end = cr;
        next = buf[cr + 1] === "\n" ? cr + 2 : cr + 1;
      } else if (lf >= 0) {
        end = lf;
        next = lf + 1;
      } else {
        break;
      }
      const message = this.line(buf.slice(pos, end));
      if (message) out.push(message);
      pos = next;
    }
    this.pending = buf.slice(pos);
    return out;
  }

  /** The stream has ended: a CR held back as maybe half of a CRLF was a line end after all. */
  finish(): SseMessage[] {
    return this.pending.endsWith("\r") ? this.push("\n") : [];
  }

  private line(line: string): SseMessage | null {
    if (line === "") {
      const message = this.data.length
        ? { id: this.lastEventId, event: this.event || "message", data: this.data.join("\n") }
        : null;
      this.data = [];
      this.event = "";
      return message;
    }
    if (line.startsWith(":")) return null; // a comment (keep-alive)
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
    else if (field === "id" && !value.includes("\0")) this.lastEventId = value;
    else if (field === "retry" && /^\d+$/.test(value)) this.retryMs = Number(value);
    return null;
  }
}

export type StreamState = "connecting" | "open" | "reconnecting" | "closed";

export interface FollowOptions {
  signal: AbortSignal;
  lastEventId?: string;
  onMessage(message: SseMessage): void;
  onState?(state: StreamState, detail?: string): void;
  /** Asked when the server ends the stream: whether there may be more (connect again). */
  more(): Promise<boolean>;
}

/** Follows an event stream until the server ends it for good, ``more`` says no, or
 * ``signal`` aborts; returns the id of the last event seen. */
export async function follow(path: string, opts: FollowOptions): Promise<string> {
  let last = opts.lastEventId ?? "";
  let delay = 500;
  while (!opts.signal.aborted) {
    opts.onState?.("connecting");
    let dropped = false;
    try {
      const headers: Record<string, string> = { Accept: "text/event-stream" };
      if (last) headers["Last-Event-ID"] = last;
      const response = await request(path, { headers, signal: opts.signal });
      if (!response.body) throw new Error("the response has no body");
      opts.onState?.("open");
      const parser = new SseParser();
      parser.lastEventId = last;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        for (const message of done ? parser.finish() : parser.push(value)) {
          last = message.id;
          opts.onMessage(message);
        }
        if (done) break;
        delay = parser.retryMs ?? 500;
      }
    } catch (err) {
      if (opts.signal.aborted) break;
      // the key or the job is gone: connecting again cannot help
      if (err instanceof ApiError && err.status < 500 && err.status !== 429) {
        opts.onState?.("closed", err.message);
        throw err;
      }
      dropped = true;
    }
    if (opts.signal.aborted) break;
    if (!dropped && !(await opts.more())) {
      opts.onState?.("closed");
      return last;
    }
    opts.onState?.("reconnecting");
    await sleep(delay, opts.signal);
    delay = Math.min(delay * 2, 10_000);
  }
  return last;
}
