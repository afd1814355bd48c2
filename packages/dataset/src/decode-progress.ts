/** Reported after each image is done (decoded or failed): `loadDataset`'s `onProgress`. */
export interface DecodeProgress {
  /** Images finished so far, including this one. */
  done: number;
  total: number;
  /** The image just finished, as named in labels.json. */
  image: string;
}
