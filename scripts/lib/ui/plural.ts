// "1 file", "2 files": counts in messages agree with their nouns.
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
