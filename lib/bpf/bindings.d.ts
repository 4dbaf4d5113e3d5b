declare module 'bindings' {
  function bindings(name: string): unknown;
  export = bindings;
}
