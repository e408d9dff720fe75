// Just enough of the DOM for src/dom.ts's `h` and `replace` under Node: elements with
// attributes, children, text and click listeners, and lookups by attribute for the tests.

class FakeNode {
  parent: FakeElement | null = null;
  get textContent(): string {
    return "";
  }
}

class FakeText extends FakeNode {
  constructor(readonly data: string) {
    super();
  }
  override get textContent(): string {
    return this.data;
  }
}

export class FakeElement extends FakeNode {
  readonly attributes = new Map<string, string>();
  children: FakeNode[] = [];
  hidden = false;
  private readonly listeners = new Map<string, ((event: unknown) => void)[]>();

  constructor(readonly tagName: string) {
    super();
  }

  setAttribute(name: string, value: string): void {
    this.attributes.set(name, value);
  }
  getAttribute(name: string): string | null {
    return this.attributes.get(name) ?? null;
  }
  addEventListener(kind: string, fn: (event: unknown) => void): void {
    this.listeners.set(kind, [...(this.listeners.get(kind) ?? []), fn]);
  }
  click(): void {
    if (this.attributes.has("disabled")) return;
    for (const fn of this.listeners.get("click") ?? []) fn({ type: "click", target: this });
  }
  append(...nodes: (FakeNode | string)[]): void {
    for (const n of nodes) {
      const node = typeof n === "string" ? new FakeText(n) : n;
      node.parent = this;
      this.children.push(node);
    }
  }
  replaceChildren(...nodes: (FakeNode | string)[]): void {
    this.children = [];
    this.append(...nodes);
  }
  override get textContent(): string {
    return this.children.map((c) => c.textContent).join("");
  }
  set textContent(text: string) {
    this.replaceChildren(text);
  }

  /** Every element below this one, depth first. */
  *descendants(): Generator<FakeElement> {
    for (const c of this.children) {
      if (c instanceof FakeElement) {
        yield c;
        yield* c.descendants();
      }
    }
  }
  /** The elements below with ``name`` (and, when given, that value). */
  all(name: string, value?: string): FakeElement[] {
    return [...this.descendants()].filter((e) =>
      e.attributes.has(name) && (value === undefined || e.attributes.get(name) === value));
  }
  one(name: string, value?: string): FakeElement {
    const found = this.all(name, value);
    if (found.length !== 1) throw new Error(`${found.length} elements with ${name}=${value ?? "*"}`);
    return found[0];
  }
}

/** Installs the stand-in as the global `document` and `Node`. */
export function installFakeDom(): void {
  Object.assign(globalThis, {
    Node: FakeNode,
    document: { createElement: (tag: string) => new FakeElement(tag) },
  });
}

/** A real element's stand-in, for the tests' lookups. */
export function fake(el: unknown): FakeElement {
  if (!(el instanceof FakeElement)) throw new Error("not made by the fake DOM");
  return el;
}
