/** "1 server", "3 servers", "0 batches": a count with its noun in agreement. The one rule for counts shown to a person. */
export function counted(n: number | bigint, noun: string, plural = /(s|x|z|ch|sh)$/.test(noun) ? `${noun}es` : `${noun}s`): string {
  return `${n} ${BigInt(n) === 1n ? noun : plural}`;
}
