#!/usr/bin/env node
import { main } from './main.js';

// `litter ... | head`: a closed pipe ends the command quietly, as it would a Unix tool.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}

process.exitCode = await main(process.argv.slice(2));
