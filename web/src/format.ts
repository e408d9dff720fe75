// How numbers, times and ids are shown.

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

export function score(v: number | null | undefined): string {
  return v === null || v === undefined ? "—" : v.toFixed(3);
}

export function count(v: number | null | undefined): string {
  return v === null || v === undefined ? "—" : integer.format(v);
}

// Spend in US dollars, by the models' prices: cents are too coarse for small jobs.
export function usd(v: number | null | undefined): string {
  return v === null || v === undefined ? "—" : `$${v.toFixed(4)}`;
}

export function shortId(id: string): string {
  return id.slice(0, 8);
}

export function seconds(s: number | null | undefined): string {
  if (s === null || s === undefined) return "—";
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function when(iso: string | null | undefined): string {
  if (!iso) return "—";
  const t = new Date(iso);
  const ago = (Date.now() - t.getTime()) / 1000;
  if (ago < 60) return "just now";
  if (ago < 3600) return `${Math.floor(ago / 60)} min ago`;
  if (ago < 86400) return `${Math.floor(ago / 3600)} h ago`;
  return t.toISOString().slice(0, 16).replace("T", " ");
}

export function elapsed(from: string | null | undefined, to?: string | null): number | null {
  if (!from) return null;
  const end = to ? new Date(to).getTime() : Date.now();
  return Math.max(0, (end - new Date(from).getTime()) / 1000);
}

export function truncate(text: string, n: number): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > n ? `${flat.slice(0, n - 1)}…` : flat;
}

/** Which examples a score is on, short: "full dev · n=100", "dev sample · n=20", or for a
 * candidate raced out early "dev sample, cut short · n=8 of 20". */
export function scoreBasis(s: { split: string; subset: string | null; n: number } | null | undefined): string {
  if (!s) return "";
  if (s.subset === null) return `full ${s.split} · n=${count(s.n)}`;
  const [size, raced] = s.subset.split(":");
  const of = /^\d+$/.test(size) && raced ? ` of ${count(Number(size))}` : "";
  const what = size === "all" ? s.split : `${s.split} sample`;
  return `${what}${raced ? ", cut short" : ""} · n=${count(s.n)}${of}`;
}
