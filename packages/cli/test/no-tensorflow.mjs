// Preloaded with `node --import` by the tests: any import of a TensorFlow.js package fails the command, so a
// static import that pulls TensorFlow.js into `litter cache` or `litter inspect` breaks a test.
import { register } from 'node:module';

const hooks = `
export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  if (specifier.startsWith('@tensorflow/') || resolved.url.includes('/@tensorflow/')) {
    throw new Error('TensorFlow.js was loaded: ' + specifier + ' from ' + context.parentURL);
  }
  return resolved;
}
`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);
