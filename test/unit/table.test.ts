import { describe, expect, it } from 'vitest';
import { renderTable } from '../../scripts/lib/ui/table.js';

describe('renderTable', () => {
  it('pads every column but the last to its widest cell, two spaces apart; null is -, trailing blanks go', () => {
    const table = renderTable(['RUN', 'STATE', 'NOTE'], [
      ['a-long-run-id', 'running', 'resumed at step 40'],
      ['b', null, ''],
      ['c', 7, null],
    ]);
    expect(table).toBe(
      ['RUN            STATE    NOTE', 'a-long-run-id  running  resumed at step 40', 'b              -', 'c              7        -'].join('\n'),
    );
  });

  it('is the header alone when there are no rows', () => {
    expect(renderTable(['A', 'B'], [])).toBe('A  B');
  });
});
