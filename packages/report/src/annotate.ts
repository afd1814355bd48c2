import sharp, { type OutputInfo } from 'sharp';
import { escapeXml, shortLabel, writeReportFile } from './_util.js';
import { ReportError } from './errors.js';

/** Colour of predicted boxes (magenta: stands out on grey floors and red, blue or yellow objects). */
export const PREDICTED_BOX_COLOR = '#ff00c8';
/** Colour of true boxes (cyan, drawn dashed, so the two differ without colour too). */
export const TRUE_BOX_COLOR = '#00e5ff';

/** A box to draw on an image. */
export interface AnnotationBox {
  /** `[x1, y1, x2, y2]` normalised to [0, 1], y DOWN (image rows), as `Dataset.boxes` and the model's box head. */
  box: readonly number[];
  /** Text drawn at the box, e.g. `Cube 0.93`. */
  label?: string;
  /** Any SVG colour. @default PREDICTED_BOX_COLOR */
  color?: string;
  /** Dashed outline, e.g. for true boxes. @default false */
  dashed?: boolean;
  /** Put the label under the box instead of above it (so a true and a predicted label do not overlap). @default false */
  labelBelow?: boolean;
}

/** How big to draw. */
export interface AnnotateOptions {
  /**
   * Scale small images up by a whole factor (nearest neighbour, so pixels stay sharp) until their longest side is
   * at least this many pixels, so that boxes and labels are readable on 96x72 renders. 0 keeps the size.
   * @default 288
   */
  minSize?: number;
  /** Scale large images down so that their longest side is at most this many pixels. @default Infinity */
  maxSize?: number;
  /** Output format. @default 'png' */
  format?: 'png' | 'jpeg';
}

/** An annotated image in memory. */
export interface AnnotatedImage {
  data: Buffer;
  width: number;
  height: number;
  format: 'png' | 'jpeg';
}

/**
 * Draws boxes with labels on an image and returns the encoded image (sharp with an SVG overlay).
 *
 * @example
 * const { data } = await renderAnnotatedImage('scene.png', [{ box: [0.1, 0.2, 0.5, 0.6], label: 'Cube 0.93' }]);
 */
export async function renderAnnotatedImage(
  imagePath: string,
  boxes: readonly AnnotationBox[],
  options: AnnotateOptions = {},
): Promise<AnnotatedImage> {
  const { minSize = 288, maxSize = Number.POSITIVE_INFINITY, format = 'png' } = options;
  boxes.forEach((b, i) => {
    checkBox(b.box, `box ${i} (${b.label ?? 'no label'})`);
  });
  let resized: { data: Buffer; info: OutputInfo };
  try {
    const metadata = await sharp(imagePath).metadata();
    const width = metadata.autoOrient.width;
    const height = metadata.autoOrient.height;
    const longest = Math.max(width, height);
    let scale = 1;
    if (longest < minSize) scale = Math.ceil(minSize / longest);
    else if (longest > maxSize) scale = maxSize / longest;
    resized = await sharp(imagePath)
      .autoOrient()
      .resize({
        width: Math.max(1, Math.round(width * scale)),
        height: Math.max(1, Math.round(height * scale)),
        fit: 'fill',
        kernel: Number.isInteger(scale) ? 'nearest' : 'lanczos3',
      })
      .png()
      .toBuffer({ resolveWithObject: true });
  } catch (cause) {
    throw new ReportError(
      'image-unreadable',
      `cannot read image ${imagePath}: ${(cause as Error).message}; check that the file exists and is a PNG or JPEG`,
      { cause },
    );
  }
  const { width, height } = resized.info;
  const overlay = boxOverlaySvg(boxes, width, height);
  let pipeline = sharp(resized.data).composite([{ input: Buffer.from(overlay), top: 0, left: 0 }]);
  // JPEG has no alpha: put transparent renders on white, as a browser shows them.
  pipeline =
    format === 'jpeg' ? pipeline.flatten({ background: '#ffffff' }).jpeg({ quality: 88 }) : pipeline.png();
  try {
    return { data: await pipeline.toBuffer(), width, height, format };
  } catch (cause) {
    throw new ReportError('render-failed', `cannot draw boxes on ${imagePath}: ${(cause as Error).message}`, {
      cause,
    });
  }
}

/**
 * Draws boxes with labels on an image and writes it to `outPath` (PNG, or JPEG when `outPath` ends in
 * `.jpg`/`.jpeg`); creates the folder. For `litter predict --annotate DIR` and the report's image grid.
 *
 * @example
 * await annotateImage('renders/3-4y-2p.png', [
 *   { box: [0.1, 0.2, 0.5, 0.6], label: 'Cube 0.93', color: PREDICTED_BOX_COLOR },
 *   { box: [0.12, 0.2, 0.48, 0.62], label: 'Cube', color: TRUE_BOX_COLOR, dashed: true, labelBelow: true },
 * ], 'annotated/3-4y-2p.png');
 */
export async function annotateImage(
  imagePath: string,
  boxes: readonly AnnotationBox[],
  outPath: string,
  options: Omit<AnnotateOptions, 'format'> = {},
): Promise<{ path: string; width: number; height: number }> {
  const format = /\.jpe?g$/i.test(outPath) ? 'jpeg' : 'png';
  const image = await renderAnnotatedImage(imagePath, boxes, { ...options, format });
  await writeReportFile(outPath, image.data);
  return { path: outPath, width: image.width, height: image.height };
}

function checkBox(box: readonly number[], what: string): void {
  if (!Array.isArray(box) || box.length !== 4 || !box.every(Number.isFinite)) {
    throw new ReportError(
      'invalid-data',
      `${what} is ${JSON.stringify(box)}; pass [x1, y1, x2, y2] as 4 finite numbers normalised to [0, 1]`,
    );
  }
}

/** Black or white, whichever reads better on `color` (`#rrggbb`; anything else gets black). */
function textColorOn(color: string): string {
  const match = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
  if (!match) return '#000000';
  const [r, g, b] = [match[1]!, match[2]!, match[3]!].map((h) => Number.parseInt(h, 16) / 255) as [
    number,
    number,
    number,
  ];
  return 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 ? '#000000' : '#ffffff';
}

/** The SVG overlay with all boxes and labels, `width` x `height` pixels. */
function boxOverlaySvg(boxes: readonly AnnotationBox[], width: number, height: number): string {
  const stroke = Math.max(2, Math.round(Math.max(width, height) / 160));
  const fontSize = Math.max(10, Math.round(Math.max(width, height) / 26));
  const clamp = (v: number) => Math.min(1, Math.max(0, v));
  const parts: string[] = [];
  for (const {
    box,
    label: rawLabel,
    color = PREDICTED_BOX_COLOR,
    dashed = false,
    labelBelow = false,
  } of boxes) {
    const [a, b, c, d] = box.map(clamp) as [number, number, number, number];
    const x = Math.min(a, c) * width;
    const y = Math.min(b, d) * height;
    const w = Math.max(1, Math.abs(c - a) * width);
    const h = Math.max(1, Math.abs(d - b) * height);
    const dash = dashed ? ` stroke-dasharray="${stroke * 3} ${stroke * 2}"` : '';
    parts.push(
      `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${w.toFixed(1)}" height="${h.toFixed(1)}" fill="none" stroke="${escapeXml(color)}" stroke-width="${stroke}"${dash}/>`,
    );
    if (!rawLabel) continue;
    const label = shortLabel(rawLabel);
    // Text width is estimated (no font metrics here); 0.62 em per character is generous for DejaVu/Liberation Sans.
    const labelWidth = Math.min(width, label.length * fontSize * 0.62 + 6);
    const labelHeight = fontSize + 4;
    const labelX = Math.min(Math.max(0, x), Math.max(0, width - labelWidth));
    let labelY = labelBelow ? y + h : y - labelHeight;
    if (labelY < 0) labelY = y; // no room above: inside the top edge
    if (labelY + labelHeight > height) labelY = Math.max(0, y + h - labelHeight); // no room below: inside
    parts.push(
      `<rect x="${labelX.toFixed(1)}" y="${labelY.toFixed(1)}" width="${labelWidth.toFixed(1)}" height="${labelHeight}" fill="${escapeXml(color)}" fill-opacity="0.85"/>`,
      `<text x="${(labelX + 3).toFixed(1)}" y="${(labelY + fontSize).toFixed(1)}" font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif" font-size="${fontSize}" fill="${textColorOn(color)}">${escapeXml(label)}</text>`,
    );
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${parts.join('')}</svg>`;
}
