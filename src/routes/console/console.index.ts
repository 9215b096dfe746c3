import { createRouter } from "../../http/router";
import { getConsoleConfig } from "./console.handlers";
import { consoleConfig } from "./console.routes";

/** What the browser console (console/, served at `/`) needs from the server. */
export const consoleRouter = createRouter().openapi(consoleConfig, getConsoleConfig);
