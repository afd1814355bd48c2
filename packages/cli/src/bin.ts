#!/usr/bin/env node
// citty colours its usage text unless NO_COLOR is set, even into a pipe or a file.
if (!process.stdout.isTTY) process.env.NO_COLOR ??= '1';

// `litter ... | head`: a closed pipe ends the command quietly, as it would a Unix tool.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}

const { main } = await import('./main.js');
process.exitCode = await main(process.argv.slice(2));
