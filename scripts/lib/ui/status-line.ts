// A live status line under streaming output. On a TTY the line is redrawn in place and the
// experiment's output scrolls above it; elsewhere (CI, pipes) output passes through and the
// status is printed only when it changes meaningfully (say()).
export class StatusLine {
  private text = '';
  private drawn = false;
  private lastDraw = 0;
  private readonly tty: boolean;

  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {
    this.tty = Boolean(out.isTTY) && process.env.TERM !== 'dumb';
  }

  private clear(): void {
    if (this.drawn) this.out.write('\r\x1b[K');
    this.drawn = false;
  }

  private draw(): void {
    if (!this.tty || !this.text) return;
    const width = (this.out.columns || 100) - 1;
    this.out.write(`\r\x1b[K${this.text.slice(0, width)}`);
    this.drawn = true;
    this.lastDraw = Date.now();
  }

  /** Replaces the live line (redrawn at most 10 times a second). */
  update(text: string): void {
    this.text = text;
    if (this.tty && Date.now() - this.lastDraw > 100) {
      this.clear();
      this.draw();
    }
  }

  /** Writes output above the live line; none once the stream's reader is gone (`| head -1`). */
  write(stream: NodeJS.WriteStream, data: Buffer | string): void {
    if (!stream.writable) return;
    this.clear();
    stream.write(data);
    this.draw();
  }

  /** A line worth keeping: printed everywhere, TTY or not. */
  say(line: string): void {
    this.write(this.out, `${line}\n`);
  }

  done(): void {
    this.clear();
    this.text = '';
  }
}
