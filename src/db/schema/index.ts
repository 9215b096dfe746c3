export * from "./apps";
export * from "./identity";
