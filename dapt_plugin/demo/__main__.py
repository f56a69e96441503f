from dapt_plugin.demo.run import main

main()
