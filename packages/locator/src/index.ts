export * from './types';
export { createLocator } from './locator';
export { rendezvousPick, rendezvousScore } from './rendezvous';
export { createDirectoryLocator, resolveDirectoryPlacement } from './directory-locator';
export type { DirectoryLocator, DirectoryLocatorOptions, DirectoryLookup, DirectoryPlacement } from './directory-locator';
