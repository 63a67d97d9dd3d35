/** Choosing a release for a requirement (pure: no I/O, no trust decisions), as `resolve.py`. */

import { compare, explain as explainVersion, satisfies } from "@renovatebot/pep440";

import { ResolutionError } from "../errors.js";
import { exactVersion, type RequirementSpec, specifierAllowsPrereleases } from "./requirements.js";

/** A published version as the index lists it. */
export interface Candidate {
  readonly version: string;
  readonly yanked: boolean;
  readonly yankedReason: string | null;
}

/** The chosen candidate plus any warning the user must see. */
export interface Choice {
  readonly candidate: Candidate;
  readonly warning: string | null;
}

function contains(req: RequirementSpec, version: string, allowPre: boolean): boolean {
  // packaging's SpecifierSet.contains: the set decides about pre-releases once, then each
  // clause is evaluated with pre-releases allowed.
  if (explainVersion(version)?.is_prerelease && !allowPre) {
    return false;
  }
  return satisfies(version, req.specifier, { prereleases: true });
}

/**
 * Pick the highest version that satisfies `req`. Pre-releases count only when asked
 * (`prereleases` or a specifier that names one). Yanked versions count only when the
 * requirement pins exactly that version, and then with a warning.
 *
 * @throws ResolutionError (`resolution`) Listing what is available.
 */
export function choose(
  req: RequirementSpec,
  candidates: readonly Candidate[],
  prereleases = false,
): Choice {
  const exact = exactVersion(req);
  const allowPre = prereleases || specifierAllowsPrereleases(req);
  // A malformed entry can never be chosen; the audit reports it.
  const parsed = candidates.filter((c) => explainVersion(c.version) !== null);
  const matching = parsed.filter((c) => {
    if (!contains(req, c.version, allowPre || exact !== null)) {
      return false;
    }
    return !c.yanked || (exact !== null && compare(exact, c.version) === 0);
  });
  if (matching.length === 0) {
    const available =
      [...parsed]
        .sort((a, b) => compare(a.version, b.version))
        .map((c) => `${c.version}${c.yanked ? " (yanked)" : ""}`)
        .join(", ") || "none";
    const hint =
      parsed.some((c) => explainVersion(c.version)?.is_prerelease) && !allowPre
        ? "pre-releases are only chosen when asked for (prereleases: true)"
        : undefined;
    throw new ResolutionError(
      "resolution",
      `no release of ${req.name} satisfies '${req.text}'; available: ${available}`,
      { hint },
    );
  }
  const best = matching.reduce((a, b) => (compare(b.version, a.version) > 0 ? b : a));
  let warning: string | null = null;
  if (best.yanked) {
    const reason = best.yankedReason ? `: ${best.yankedReason}` : "";
    warning = `${req.name} ${best.version} is yanked${reason} (used because pinned exactly)`;
  }
  return { candidate: best, warning };
}
