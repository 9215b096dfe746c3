export * from "./account";
export * from "./apps";
export * from "./bans";
export * from "./credentials";
export * from "./gps";
export * from "./identity";
export * from "./oauth";
