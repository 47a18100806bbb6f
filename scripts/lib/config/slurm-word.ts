// What may go into an `#SBATCH` line or a job name: sbatch reads a directive up to the end of
// its line and splits on spaces, so a value with a space, a quote or a newline would smuggle in
// another option. Such values are refused, never quoted: one rule for the config's check
// (cluster-config.ts) and the renderer's (slurm/render-sbatch.ts).
const SLURM_WORD = /^[A-Za-z0-9][A-Za-z0-9_.:,=+-]*$/;

/** Why `value` cannot be an sbatch option's value, or null when it can. */
export function slurmValueProblem(value: string): string | null {
  if (value === '') return 'it is empty';
  if (value.length > 200) return 'it is longer than 200 characters';
  for (const ch of value) {
    if (/[A-Za-z0-9_.:,=+-]/.test(ch)) continue;
    if (ch === ' ') return 'a space is not allowed';
    if (ch === '\n' || ch === '\r') return 'a newline is not allowed';
    const code = ch.codePointAt(0) ?? 0;
    return code < 0x20 || code === 0x7f ? `a control character (U+${code.toString(16).padStart(4, '0')}) is not allowed` : `"${ch}" is not allowed`;
  }
  if (!SLURM_WORD.test(value)) return `it starts with "${value[0]}"`;
  return null;
}
