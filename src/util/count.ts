// Counts in messages: "1 page", "2 pages".

/** A count with its noun, plural by -s (which every noun the messages use takes). */
export function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
