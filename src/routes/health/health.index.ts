import { createRouter } from "../../http/router";
import { getHealth } from "./health.handlers";
import { health } from "./health.routes";

export const healthRouter = createRouter().openapi(health, getHealth);
