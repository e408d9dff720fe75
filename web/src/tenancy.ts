// Which jobs a key sees, said to the person holding it: a key acts for its name and sees the jobs
// that name owns (submitted with a key of that name, or run from the command line under an
// owner of that name: EVO_OWNER, by default the login name); an admin key sees every job.

import type { Me } from "./api";

/** A piece of a sentence: text, or a command to be shown as code. */
export type Part = string | { code: string };

/** One line over the jobs table: whose jobs these are. */
export function whoseJobs(me: Me | null): string {
  if (me === null) return "";
  return me.admin
    ? `Every owner's jobs: "${me.name}" is an admin key.`
    : `Jobs owned by "${me.name}", the name of this key.`;
}

/** Why the table is empty, and what would fill it, as paragraphs. */
export function whyNoJobs(me: Me | null): Part[][] {
  const store: Part[] = [
    "Jobs run from the command line appear here only when they use the same database as ",
    { code: "evo serve" }, " (", { code: "--db" }, " or ", { code: "EVO_DATABASE_URL" }, ").",
  ];
  if (me === null) return [["No jobs yet: submit one above."], store];
  if (me.admin) {
    return [
      ["No jobs in this store yet: an admin key sees every owner's jobs, so none has been run ",
        "or submitted here. Submit one above."],
      store,
    ];
  }
  const name = me.name;
  return [
    [`No jobs owned by "${name}" yet. This key sees only the jobs its name owns: those submitted `,
      `with a key named "${name}", and those run or submitted from the command line under the `,
      `owner "${name}" (the `, { code: "EVO_OWNER" }, " setting, by default your login name)."],
    ["To see the jobs you ran from the command line, use a key named after your login name (",
      { code: 'evo keys create "$USER"' }, "), or run them with ", { code: `EVO_OWNER=${name}` },
      ". An admin key (", { code: "evo keys create NAME --admin" }, ") sees every job, ",
      "those run before jobs had owners included."],
    store,
  ];
}
