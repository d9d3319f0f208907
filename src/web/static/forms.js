// Form helpers: a field's own hint instead of the browser's generic complaint ("Please match
// the requested format."), and copy buttons for commands and keys.
'use strict'
;(function () {
  for (const input of document.querySelectorAll('[data-hint]')) {
    const check = () => {
      input.setCustomValidity('')
      if (!input.validity.valid) input.setCustomValidity(input.dataset.hint)
    }
    input.addEventListener('invalid', check)
    input.addEventListener('input', check)
  }
  for (const button of document.querySelectorAll('button[data-copy]')) {
    button.addEventListener('click', async () => {
      const target = document.getElementById(button.dataset.copy)
      if (!target) return
      try {
        await navigator.clipboard.writeText(target.textContent)
        button.textContent = 'Copied'
      } catch {
        // No clipboard (plain http): select the text so that Ctrl-C copies it.
        const range = document.createRange()
        range.selectNodeContents(target)
        const selection = window.getSelection()
        selection.removeAllRanges()
        selection.addRange(range)
        button.textContent = 'Selected: press Ctrl-C'
      }
      setTimeout(() => { button.textContent = 'Copy' }, 2500)
    })
  }
})()
