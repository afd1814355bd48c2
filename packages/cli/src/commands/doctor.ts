import os from 'node:os';
import { defineCommand } from 'citty';
import { commonArgs } from '../_args.js';
import { ioOf, writeJson, writeLine } from '../_io.js';
import { formatTable } from '../_table.js';
import { CliError, ExitCode } from '../errors.js';

/** Blender for `litter render`: where, which version, or why not (and how to install it). */
async function blenderReport(env: Record<string, string | undefined>) {
  const { findBlender } = await import('@litter/render');
  try {
    const { path, version, source, tested } = await findBlender({ env });
    return { available: true as const, path, version, source, tested };
  } catch (error) {
    return { available: false as const, reason: (error as Error).message.replace(/^@litter\/render: /, '') };
  }
}

export default defineCommand({
  meta: {
    name: 'doctor',
    description:
      'Show which TensorFlow.js backends load here, which one litter would use, why the others do not, and the Blender litter render uses',
  },
  args: {
    json: {
      type: 'boolean',
      description: 'Print one JSON object: node, platform, cpus, backends, selected, blender',
    },
    ...commonArgs,
  },
  async run({ args, ...context }) {
    const io = ioOf(context);
    const { initBackend, probeBackends } = await import('@litter/model');
    const probes = await probeBackends();
    const usable = probes.find((probe) => probe.available);
    // The same choice `litter train` makes without --backend, described by the backend itself.
    const selected = usable ? await initBackend({ backend: 'auto' }) : undefined;
    const environment = {
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      cpus: os.availableParallelism?.() ?? os.cpus().length,
    };
    const blender = await blenderReport(io.env);
    if (args.json) {
      writeJson(io, {
        ...environment,
        backends: probes.map(({ name, package: pkg, gpu, available, reason }) => ({
          name,
          package: pkg,
          gpu,
          available,
          ...(reason === undefined ? {} : { reason }),
        })),
        selected: selected
          ? { name: selected.name, package: selected.package, description: selected.description }
          : null,
        blender,
      });
    } else {
      writeLine(
        io.stdout,
        `node ${environment.node} on ${environment.platform}, ${environment.cpus} CPU cores`,
      );
      writeLine(io.stdout);
      const rows = probes.map((probe) => [
        probe.name,
        probe.package,
        probe.available ? (probe.package === selected?.package ? 'loads (used by default)' : 'loads') : 'no',
      ]);
      writeLine(io.stdout, formatTable([['backend', 'package', 'status'], ...rows]));
      const problems = probes.filter((probe) => !probe.available);
      if (problems.length > 0) {
        writeLine(io.stdout);
        for (const probe of problems)
          writeLine(io.stdout, `${probe.package}: ${probe.reason ?? 'does not load'}`);
      }
      writeLine(io.stdout);
      writeLine(
        io.stdout,
        selected
          ? `litter train uses ${selected.description}; pick another with --backend ${probes
              .filter((probe) => probe.available)
              .map((probe) => probe.name)
              .filter((name, index, names) => names.indexOf(name) === index)
              .join('|')}`
          : 'no backend loads: litter cannot train here',
      );
      writeLine(
        io.stdout,
        blender.available
          ? `litter render uses Blender ${blender.version} (${blender.path}, from ${blender.source}${blender.tested ? '' : '; untested version'})`
          : `litter render cannot run: ${blender.reason}`,
      );
    }
    if (!selected) {
      throw new CliError(
        'no-backend',
        'no TensorFlow.js backend loads here; reinstall dependencies (pnpm install) so @tensorflow/tfjs-backend-wasm or -cpu is present',
      );
    }
    return ExitCode.ok;
  },
});
