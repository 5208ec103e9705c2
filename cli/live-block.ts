import { fitToTerminal } from "./output.js";

const up = (rows: number) => (rows > 0 ? `\r\u001b[${rows}A` : "");
const eraseLine = "\u001b[2K";

/**
 * A block of lines redrawn in place on a terminal (a watch's spinner and steps). A redraw moves the
 * cursor up to the block's first row and rewrites its rows, each erased with EL (erase in line), never
 * ED (erase below): from the screen's top row ED erases the whole screen, which tmux (scroll-on-clear)
 * and other terminals keep by pushing the screen into the scrollback, once per frame. Each line is cut
 * to the width (a wrapped line would break the count) and the block to the screen's height but one row
 * (rows that scrolled off cannot be redrawn); `end` prints the last state whole, since nothing redraws it.
 */
export function liveBlock(stream: NodeJS.WriteStream = process.stdout) {
  let drawn = 0;
  const write = (lines: string[]) => {
    let out = up(drawn);
    for (const line of lines) out += `${eraseLine}${line}\n`;
    const left = drawn - lines.length;
    // Rows of a taller block before: erased, the cursor back under the new block.
    if (left > 0) out += `${`${eraseLine}\n`.repeat(left)}\u001b[${left}A`;
    stream.write(out);
    drawn = lines.length;
  };
  return {
    draw(lines: string[]): void {
      const rows = Math.max(3, (stream.rows || 24) - 1);
      const fitted = fitToTerminal(lines, stream.columns || 80);
      write(fitted.length <= rows ? fitted : [...fitted.slice(0, rows - 1), `… ${fitted.length - rows + 1} more lines`]);
    },
    end(lines: string[]): void {
      write(fitToTerminal(lines, stream.columns || 80));
    },
  };
}
