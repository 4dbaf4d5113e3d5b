// Built-in probes. One line per probe module.
export {};
