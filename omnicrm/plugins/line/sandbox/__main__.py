from omnicrm.plugins.line.sandbox import main

main()
