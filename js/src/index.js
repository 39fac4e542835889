// The anywidget module behind deltakit_nb/static/loader.js.
import { keepCleanAfterRestore } from "./clean.js";
import { Controller } from "./controller.js";
import { ChatView } from "./render.js";
import css from "./style.css";

const STYLE_ID = "deltakit-nb-style";
// anywidget hands initialize() and each render() a different proxy of the same model, so the
// model is recognised by a synced id the kernel side sets at creation.
const controllers = new Map();

function keyOf(model) {
  return model.get("_instance_id") || model.get("thread_id");
}

function injectStyle() {
  // One <style> per page instead of `_css`, which JupyterLab would save into every notebook.
  const existing = document.getElementById(STYLE_ID);
  if (existing) {
    if (existing.textContent !== css) existing.textContent = css;
    return;
  }
  const style = document.createElement("style");
  style.id = STYLE_ID;
  style.textContent = css;
  document.head.append(style);
}

export default {
  initialize({ model }) {
    const key = keyOf(model);
    controllers.get(key)?.dispose();
    const controller = new Controller(model);
    controllers.set(key, controller);
    keepCleanAfterRestore(model);
    return () => {
      controller.dispose();
      if (controllers.get(key) === controller) controllers.delete(key);
    };
  },
  render({ model, el }) {
    injectStyle();
    el.classList.add("dk-host");
    const key = keyOf(model);
    let controller = controllers.get(key);
    let owned = false;
    if (!controller) {
      // initialize() did not run here (should not happen); keep the view working anyway.
      controller = new Controller(model);
      controllers.set(key, controller);
      owned = true;
    }
    const view = new ChatView(el, controller, model);
    return () => {
      view.dispose();
      if (owned) {
        controller.dispose();
        controllers.delete(key);
      }
    };
  },
};
