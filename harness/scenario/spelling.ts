// Spelling help for user input: the edit distance between two names and the nearest valid name,
// so a misspelt scenario field is answered with "did you mean …?" instead of being ignored.

/**
 * Optimal-string-alignment distance: insertions, deletions, substitutions and transpositions of
 * two adjacent characters each cost 1 ("fualts" → "faults" is one transposition).
 */
export function editDistance(a: string, b: string): number {
  // rows[i][j] = distance between a[0..i) and b[0..j); three rows are enough for transpositions.
  let beforePrevious: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + substitution);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, (beforePrevious[j - 2] as number) + 1);
      current.push(best);
    }
    beforePrevious = previous;
    previous = current;
  }
  return previous[b.length] as number;
}

/**
 * The candidate closest to `word` (case-insensitive distance, ties to the earlier candidate), or
 * undefined when even the closest one differs in more than a third of its letters (at least 2) —
 * unless one name contains the other ("dkgInterval" for "dkgIntervalLength").
 */
export function nearestName(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  let best: { name: string; distance: number } | undefined;
  for (const name of candidates) {
    const distance = editDistance(w, name.toLowerCase());
    if (best === undefined || distance < best.distance) best = { name, distance };
  }
  if (best !== undefined && best.distance <= Math.max(2, Math.floor(best.name.length / 3))) return best.name;
  const containing = candidates.filter((name) => {
    const c = name.toLowerCase();
    return Math.min(c.length, w.length) >= 3 && (c.includes(w) || w.includes(c));
  });
  return containing.length === 0 ? undefined : containing.reduce((a, b) => (editDistance(w, b.toLowerCase()) < editDistance(w, a.toLowerCase()) ? b : a));
}

/** "unknown field 'fualts'; did you mean 'faults'?" (or the list of valid names when none is near). */
export function unknownFieldMessage(field: string, valid: readonly string[], where = ""): string {
  const near = nearestName(field, valid);
  const at = where === "" ? "" : ` in ${where}`;
  return near === undefined
    ? `unknown field '${field}'${at} (valid fields: ${valid.join(", ")})`
    : `unknown field '${field}'${at}; did you mean '${near}'?`;
}
