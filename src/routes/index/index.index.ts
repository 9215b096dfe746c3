import { createRouter } from "../../http/router";
import { getApiInfo } from "./index.handlers";
import { apiInfo } from "./index.routes";

export const indexRouter = createRouter().openapi(apiInfo, getApiInfo);
