/**
 * Plain-text columns: the first column left-aligned, numeric-looking cells right-aligned, two spaces apart.
 *
 * @example
 * formatTable([['class', 'images'], ['Cube', '12']]);
 */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const columns = Math.max(0, ...rows.map((row) => row.length));
  const widths = Array.from({ length: columns }, (_, column) =>
    Math.max(0, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const numeric = (cell: string) => /^[-+]?[\d.,]+(%|x\d+)?$/.test(cell);
  return rows
    .map((row) =>
      row
        .map((cell, column) => {
          const width = widths[column] ?? 0;
          return column > 0 && numeric(cell) ? cell.padStart(width) : cell.padEnd(width);
        })
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
