// The package's 'region-system/level' entry: an abstract-level database in a region. Only
// this entry loads abstract-level; the package root never imports it.

/**
 * RegionLevel: the Level ecosystem (abstract-level and the modules built on it) on a region.
 *
 * ```ts
 * import { RegionLevel } from 'region-system/level';
 * const db = new RegionLevel('data/app.pool', { region: 'users', valueEncoding: 'json' });
 * await db.put('ada', { born: 1815 });      // durable when the promise settles
 * await db.get('ada');                      // { born: 1815 }
 * await db.close();
 * ```
 *
 * @packageDocumentation
 */
export { RegionLevel, type RegionLevelOptions } from './region_level.js';
