// Sign in: paste an API key. It is kept in this tab's sessionStorage only and sent as
// "Authorization: Bearer" with every call.

import { ApiError, request, session } from "../api";
import { h, replace } from "../dom";

export function loginView(root: HTMLElement, done: () => void, notice?: string): void {
  const input = h("input", {
    id: "api-key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "the key printed by `evo keys create`",
    required: true,
  });
  const message = h("p", { class: "error", role: "alert" }, notice ?? "");
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { class: "card login", novalidate: true },
    h("h1", null, "Sign in"),
    h("p", { class: "muted" },
      "Paste an API key. Make one on the server with ",
      h("code", null, 'evo keys create "$USER"'),
      ": a key sees the jobs owned by its name, and jobs run from the command line are owned by ",
      "your login name (or ", h("code", null, "EVO_OWNER"), "). Add ", h("code", null, "--admin"),
      " to see every owner's jobs. The key stays in this browser tab only."),
    h("label", { for: "api-key" }, "API key"),
    input,
    message,
    button,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void signIn();
  });

  async function signIn(): Promise<void> {
    const key = input.value.trim();
    if (!key) {
      message.textContent = "Paste a key first.";
      return;
    }
    button.disabled = true;
    message.textContent = "";
    try {
      await request("/jobs", { query: { limit: 1 }, key });
      session.signIn(key);
      done();
    } catch (err) {
      message.textContent =
        err instanceof ApiError && err.status === 401
          ? "This key was refused: it is unknown or revoked."
          : `Could not reach the server: ${(err as Error).message}`;
    } finally {
      button.disabled = false;
    }
  }

  replace(root, form);
  input.focus();
}
