export * from "./apps";
export * from "./bans";
export * from "./credentials";
export * from "./identity";
