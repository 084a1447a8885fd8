// Signing in to a service that has API tokens (NADA_API_TOKENS). The token goes to
// POST /session once; the service answers with an HttpOnly session cookie (a random id,
// not the token) that the browser then sends with every call, picture, download and event
// stream, so nothing here stores it.
// The dialog opens at start-up when the service says it needs a token, and whenever a
// call answers 401 (api.js fires "nada:unauthorized"); "Sign out" shows who is signed in.

import { api } from "./api.js";
import { fill, h, setText } from "./dom.js";

let dialog = null;

function signInDialog(onSignedIn) {
  const input = h("input", { type: "password", id: "signin-token", name: "token", autocomplete: "current-password", required: true, spellcheck: "false" });
  const error = h("p", { class: "field-error", id: "signin-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "button button-primary" }, "Sign in");
  const form = h("form", { class: "signin-form", novalidate: true },
    h("h2", { id: "signin-heading" }, "Sign in"),
    h("p", { class: "muted" }, "This service asks for an API token (one of its NADA_API_TOKENS). Your jobs are the ones submitted with it."),
    h("label", { for: "signin-token" }, "API token"),
    input, error,
    h("div", { class: "form-actions" }, submit));
  const el = h("dialog", { class: "signin", "aria-labelledby": "signin-heading" }, form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) {
      setText(error, "Enter the token.");
      input.focus();
      return;
    }
    submit.disabled = true;
    setText(error, "");
    try {
      const session = await api.signIn(token);
      input.value = "";
      el.close();
      onSignedIn(session);
    } catch (err) {
      setText(error, err.status === 401 ? "That is not a token of this service." : err.message);
      input.select();
    } finally {
      submit.disabled = false;
    }
  });
  el.addEventListener("cancel", (event) => event.preventDefault()); // nothing works without it
  document.body.append(el);
  return el;
}

function showAccount(slot, session, onSignedOut) {
  if (!session || !session.tokens || !session.owner) {
    fill(slot);
    return;
  }
  fill(slot,
    h("span", { class: "account-name muted" }, `Signed in as ${session.owner}`),
    h("button", { type: "button", class: "button button-small", onclick: async () => {
      await api.signOut().catch(() => {});
      onSignedOut();
    } }, "Sign out"));
}

/**
 * Ask the service whether it needs a token; open the sign-in when it does and none is held.
 * `onChange` runs after signing in or out (the app re-renders its view).
 */
export function mountSignIn(slot, onChange) {
  const signedIn = (session) => {
    showAccount(slot, session, signedOut);
    onChange();
  };
  const open = () => {
    if (!dialog) dialog = signInDialog(signedIn);
    if (!dialog.open) dialog.showModal();
    dialog.querySelector("input").focus();
  };
  function signedOut() {
    showAccount(slot, null, signedOut);
    open();
  }
  window.addEventListener("nada:unauthorized", open);
  api.session().then((session) => {
    if (session && session.tokens && !session.owner) open();
    else showAccount(slot, session, signedOut);
  }).catch(() => {}); // an older service without /session: nothing to show
}
