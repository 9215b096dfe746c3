export * from "./apps";
export * from "./credentials";
export * from "./identity";
