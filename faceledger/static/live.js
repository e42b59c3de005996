// Live regions: an element with an id and data-live="N" is read again from the server (the
// same page, fetched anew) every N seconds and replaced, until the fresh copy stops asking.
// Used by a search waiting for approval and by running crawl jobs.
"use strict";

function watch(element) {
  const seconds = Number(element.dataset.live) || 5;
  setTimeout(() => refresh(element), seconds * 1000);
}

async function refresh(element) {
  if (document.hidden) {
    watch(element);
    return;
  }
  let response;
  try {
    response = await fetch(location.href, { headers: { Accept: "text/html" }, cache: "no-store" });
  } catch {
    watch(element); // the connection dropped: try again later
    return;
  }
  if (response.redirected || !response.ok) {
    location.reload(); // signed out, or the page is gone: show what the server says
    return;
  }
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  const fresh = page.getElementById(element.id);
  if (fresh === null) {
    location.reload();
    return;
  }
  element.replaceWith(fresh);
  if (fresh.dataset.live) watch(fresh);
}

document.querySelectorAll("[data-live][id]").forEach(watch);
