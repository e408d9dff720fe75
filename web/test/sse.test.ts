// The event-stream parser, fed the way a network delivers: in arbitrary pieces.

import assert from "node:assert/strict";
import { test } from "node:test";

import { SseParser } from "../src/sse";

const STREAM =
  "id: 1\nevent: JobStarted\ndata: {\"kind\":\"JobStarted\"}\n\n" +
  ": keep-alive\n\n" +
  "id: 2\r\nevent: GenerationDone\r\ndata: {\"generation\":0,\r\ndata: \"best\":0.5}\r\n\r\n" +
  "id: 3\revent: JobEnded\rdata:{}\r\r";

const EXPECTED = [
  { id: "1", event: "JobStarted", data: "{\"kind\":\"JobStarted\"}" },
  { id: "2", event: "GenerationDone", data: "{\"generation\":0,\n\"best\":0.5}" },
  { id: "3", event: "JobEnded", data: "{}" },
];

test("whole, the stream gives each message once, comments dropped", () => {
  const parser = new SseParser();
  assert.deepEqual([...parser.push(STREAM), ...parser.finish()], EXPECTED);
  assert.equal(parser.lastEventId, "3");
});

test("cut anywhere, even between CR and LF, it gives the same messages", () => {
  for (let cut = 1; cut < STREAM.length; cut++) {
    const parser = new SseParser();
    const got = [
      ...parser.push(STREAM.slice(0, cut)), ...parser.push(STREAM.slice(cut)), ...parser.finish(),
    ];
    assert.deepEqual(got, EXPECTED, `cut at ${cut}`);
  }
  const parser = new SseParser();
  assert.deepEqual([...[...STREAM].flatMap((ch) => parser.push(ch)), ...parser.finish()], EXPECTED);
});

test("an id carries over to later messages, a message without data is none, retry is read", () => {
  const parser = new SseParser();
  parser.lastEventId = "7"; // resumed after event 7
  assert.deepEqual(parser.push("event: x\n\nretry: 2500\ndata: a\n\n"), [
    { id: "7", event: "message", data: "a" },
  ]);
  assert.equal(parser.retryMs, 2500);
  assert.deepEqual(parser.push("data: b"), []); // not ended yet
  assert.deepEqual(parser.push("\n\n"), [{ id: "7", event: "message", data: "b" }]);
});
