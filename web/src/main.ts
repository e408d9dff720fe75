// The dashboard: a single page over the REST API. Views are picked by the URL's fragment
// (#/jobs, #/jobs/ID, #/jobs/ID/lineage[/CANDIDATE], #/compare/ID,ID,...), so the server only
// serves one page and every view can be bookmarked.

import "./styles.css";

import { session } from "./api";
import { h, replace } from "./dom";
import { compareView } from "./views/compare";
import { jobView } from "./views/job";
import { jobsView } from "./views/jobs";
import { lineageView } from "./views/lineage";
import { loginView } from "./views/login";

const ID = "([A-Za-z0-9_-]{1,32})";
const ROUTES: [RegExp, (root: HTMLElement, signal: AbortSignal, ...args: string[]) => void][] = [
  [/^\/?(?:jobs)?\/?$/, (root, signal) => jobsView(root, signal)],
  [new RegExp(`^/jobs/${ID}/?$`), (root, signal, id) => jobView(root, signal, id)],
  [new RegExp(`^/jobs/${ID}/lineage(?:/${ID})?/?$`),
    (root, signal, id, candidate) => lineageView(root, signal, id, candidate || undefined)],
  [/^\/compare(?:\/([A-Za-z0-9_,-]*))?\/?$/,
    (root, signal, ids) => compareView(root, signal, (ids ?? "").split(",").filter(Boolean))],
];

let current: AbortController | null = null;

function render(notice?: string): void {
  current?.abort();
  current = new AbortController();
  const root = document.getElementById("app") as HTMLElement;
  const path = decodeURIComponent(location.hash.replace(/^#/, ""));
  renderNav();
  window.scrollTo(0, 0);
  if (!session.key() || path.startsWith("/login")) {
    loginView(root, () => {
      if (path.startsWith("/login")) location.hash = "#/jobs"; // the hash change renders
      else render();
    }, notice);
    return;
  }
  for (const [pattern, view] of ROUTES) {
    const match = pattern.exec(path);
    if (match) {
      view(root, current.signal, ...match.slice(1));
      return;
    }
  }
  replace(root, h("section", { class: "card" }, h("h1", null, "Nothing here"),
    h("p", null, h("a", { href: "#/jobs" }, "Go to the jobs"))));
}

function renderNav(): void {
  const nav = document.getElementById("nav") as HTMLElement;
  if (!session.key()) {
    replace(nav, h("a", { href: "/api/v1/docs" }, "API docs"));
    return;
  }
  const signOut = h("button", { type: "button", class: "link", id: "sign-out" }, "Sign out");
  signOut.addEventListener("click", () => {
    session.signOut();
    render();
  });
  replace(nav,
    h("a", { href: "#/jobs" }, "Jobs"),
    h("a", { href: "#/compare" }, "Compare"),
    h("a", { href: "/api/v1/docs", target: "_blank", rel: "noopener" }, "API docs"),
    signOut);
}

window.addEventListener("hashchange", () => render());
window.addEventListener("evo:unauthorized", (event) => {
  session.signOut();
  render(`Signed out: ${(event as CustomEvent<string>).detail}`);
});
render();
