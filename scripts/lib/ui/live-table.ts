// A block of lines redrawn in place (the fleet's progress table). On a TTY notable lines scroll
// above the block; elsewhere (CI, pipes) only the notable lines are printed, and the caller
// prints the final table once.
export class LiveTable {
  private drawnLines = 0;
  private text = '';
  private lastDraw = 0;
  private readonly tty: boolean;

  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {
    this.tty = Boolean(out.isTTY) && process.env.TERM !== 'dumb';
  }

  get interactive(): boolean {
    return this.tty;
  }

  private clear(): void {
    if (this.drawnLines) this.out.write(`\x1b[${this.drawnLines}F\x1b[J`);
    this.drawnLines = 0;
  }

  private draw(): void {
    if (!this.tty || !this.text) return;
    const width = (this.out.columns || 120) - 1;
    const lines = this.text.split('\n').map((l) => l.slice(0, width));
    this.out.write(lines.join('\n') + '\n');
    this.drawnLines = lines.length;
    this.lastDraw = Date.now();
  }

  /** Replaces the block (redrawn at most 4 times a second). */
  update(text: string): void {
    this.text = text;
    if (this.tty && Date.now() - this.lastDraw > 250) {
      this.clear();
      this.draw();
    }
  }

  /** A line worth keeping, printed above the block. */
  say(line: string): void {
    this.clear();
    this.out.write(`${line}\n`);
    this.draw();
  }

  /** Leaves the last block on screen (a TTY) and stops redrawing. */
  done(): void {
    if (this.tty && this.text) {
      this.clear();
      this.draw();
    }
    this.drawnLines = 0;
    this.text = '';
  }
}
