import { createHash, randomBytes } from "node:crypto";
import { expect } from "vitest";
import { readJson } from "./http";
import { PASSWORD, type Requester, send } from "./identity";

const hidden = (page: string) => /name="tx" value="([^"]+)"/.exec(page)?.[1] ?? "";

const postForm = (app: Requester, path: string, fields: Record<string, string>) =>
  app.request(path, { method: "POST", body: new URLSearchParams(fields), redirect: "manual" });

/**
 * A third-party client's access token for a user, through the authorization code flow with PKCE
 * as a browser and the client go through it: the sign-in page, the consent page (skipped when
 * the user allowed these scopes before), Allow, the code exchange. The client is public.
 */
export async function delegatedToken(
  app: Requester,
  input: {
    appName: string;
    clientId: string;
    redirectUri: string;
    email: string;
    scope: string;
    password?: string;
  },
) {
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  const authorize = `/v1/apps/${input.appName}/oauth/authorize`;
  const query = new URLSearchParams({
    response_type: "code",
    client_id: input.clientId,
    redirect_uri: input.redirectUri,
    scope: input.scope,
    state: "state-1",
    code_challenge: challenge,
    code_challenge_method: "S256",
  });
  const signInPage = await app.request(`${authorize}?${query}`);
  const signInHtml = await signInPage.text();
  expect(signInPage.status, signInHtml).toBe(200);
  let decided = await postForm(app, authorize, {
    tx: hidden(signInHtml),
    email: input.email,
    password: input.password ?? PASSWORD,
  });
  if (decided.status === 200) {
    decided = await postForm(app, authorize, {
      tx: hidden(await decided.text()),
      decision: "allow",
    });
  }
  expect(decided.status, await decided.clone().text()).toBe(302);
  const location = new URL(decided.headers.get("location") ?? "");
  const code = location.searchParams.get("code");
  expect(code, location.toString()).toMatch(/^oac_/);
  const exchanged = await send(app, "POST", `/v1/apps/${input.appName}/tokens`, {
    body: {
      grant_type: "authorization_code",
      code,
      redirect_uri: input.redirectUri,
      code_verifier: verifier,
      client_id: input.clientId,
    },
  });
  expect(exchanged.status, await exchanged.clone().text()).toBe(200);
  const tokens = await readJson(exchanged);
  return {
    accessToken: tokens.access_token as string,
    refreshToken: tokens.refresh_token as string,
  };
}
