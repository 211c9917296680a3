export * from './types';
export { createLocator } from './locator';
export { rendezvousPick, rendezvousScore } from './rendezvous';
