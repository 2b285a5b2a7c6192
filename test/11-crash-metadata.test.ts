import { METADATA_SCENARIOS } from '../src/crashtest/scenarios.js';
import { testScenarios } from './fixtures/crash-scenarios.js';

testScenarios(METADATA_SCENARIOS);
