/**
 * Workflow entry points registered with the worker. Workflows are orchestration
 * only: deterministic, no I/O (biome.json forbids Node built-ins and I/O
 * libraries here). Provisioning workflows (bootstrap, deploy key, recovery,
 * reinstall) and the heartbeat monitor are exported from this file.
 */
export {};
