// abstract-level's own test suite (the Level community's compliance suite, run with tape) passes
// against RegionLevel in shared mode (every database through regiond); test 61 runs it in
// exclusive mode. See fixtures/level-suite-check.ts.

import { test } from 'node:test';
import { suiteIn } from './fixtures/level-suite-check.js';

test('abstract-level\'s test suite passes against RegionLevel in shared mode', (t) => suiteIn(t, 'shared'));
